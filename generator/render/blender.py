"""The only module that imports bpy: builds a device's Blender scene once, then renders poses.

Workbench (fast, CAD-like, the IPAD synthetic look) or Cycles (physically based). Masks come from
an object-id pass: Workbench with flat lighting and object colours, anti-aliasing off, the parts of
interest white and everything else black.
"""
from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path

import bpy  # first: it puts Blender's own modules (bmesh, mathutils) on the path

# isort: split
import bmesh
import numpy as np
import yaml
from mathutils import Euler, Vector
from PIL import Image

from ipadgen.program import Part, Pose
from ipadgen.scene import CameraPose
from ipadgen.spec import RenderSpec

# Package data (shipped in the wheel, [tool.setuptools.package-data]): read through importlib.resources
# so an installed ipadgen finds it as an editable checkout does.
MATERIALS = resources.files("ipadgen") / "assets" / "materials.yaml"
BACKGROUND = (0.05, 0.05, 0.06)
BASE_EXPOSURE = {"workbench": 0.6, "cycles": 0.0}  # stops


@contextlib.contextmanager
def _quiet():
    """Blender prints a few lines per render on the C level; keep them off the terminal."""
    saved = [os.dup(1), os.dup(2)]
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _primitive(shape: str) -> bpy.types.Mesh:
    """Unit box or unit cylinder (axis z), centred on the origin; parts scale it to size."""
    bm = bmesh.new()
    if shape == "box":
        bmesh.ops.create_cube(bm, size=1.0)
    elif shape == "cylinder":
        bmesh.ops.create_cone(bm, cap_ends=True, cap_tris=False, segments=32,
                              radius1=0.5, radius2=0.5, depth=1.0)
    else:
        raise ValueError(f"unknown part shape {shape!r}; allowed: box, cylinder")
    mesh = bpy.data.meshes.new(shape)
    bm.to_mesh(mesh)
    bm.free()
    mesh.materials.append(None)  # one slot, filled per object
    for poly in mesh.polygons:  # smooth the round side of a cylinder, keep flat caps and boxes
        poly.use_smooth = shape == "cylinder" and abs(poly.normal.z) < 0.5
    return mesh


def _material(name: str, props: dict) -> bpy.types.Material:
    """Principled material whose base colour is the object's colour (so one colour drives both
    engines and every frame can recolour a part)."""
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    nodes = mat.node_tree.nodes
    bsdf = nodes["Principled BSDF"]
    info = nodes.new("ShaderNodeObjectInfo")
    mat.node_tree.links.new(info.outputs["Color"], bsdf.inputs["Base Color"])
    bsdf.inputs["Roughness"].default_value = float(props.get("roughness", 0.5))
    bsdf.inputs["Metallic"].default_value = float(props.get("metallic", 0.0))
    mat.roughness = float(props.get("roughness", 0.5))
    mat.metallic = float(props.get("metallic", 0.0))
    return mat


class BlenderRenderer:
    """One Blender scene for one device; `render` and `render_mask` take a pose per call."""

    def __init__(self, parts: dict[str, Part], camera: CameraPose, spec: RenderSpec):
        self.parts = parts
        self.spec = spec
        self.camera_pose = camera
        self._tmp = Path(tempfile.mkdtemp(prefix="ipadgen-"))
        with _quiet():
            bpy.ops.wm.read_factory_settings(use_empty=True)
        scene = self.scene = bpy.context.scene
        scene.render.resolution_x = scene.render.resolution_y = spec.resolution
        scene.render.resolution_percentage = 100
        scene.render.image_settings.file_format = "PNG"
        scene.render.image_settings.color_mode = "RGB"
        scene.render.image_settings.color_depth = "8"
        scene.render.use_stamp = False
        scene.render.use_motion_blur = False
        scene.view_settings.view_transform = "Standard"
        scene.view_settings.look = "None"
        scene.view_settings.use_white_balance = True
        world = bpy.data.worlds.new("world")
        world.color = BACKGROUND
        world.use_nodes = True
        world.node_tree.nodes["Background"].inputs["Color"].default_value = (*BACKGROUND, 1.0)
        world.node_tree.nodes["Background"].inputs["Strength"].default_value = 1.0
        scene.world = world

        materials = yaml.safe_load(MATERIALS.read_text())
        meshes = {shape: _primitive(shape) for shape in ("box", "cylinder")}
        mats: dict[str, bpy.types.Material] = {}
        self.objects: dict[str, bpy.types.Object] = {}
        for part in parts.values():
            if part.material not in materials:
                raise ValueError(f"part {part.name}: unknown material {part.material!r}; "
                                 f"allowed: {', '.join(sorted(materials))}")
            if part.material not in mats:
                mats[part.material] = _material(part.material, materials[part.material])
            obj = bpy.data.objects.new(part.name, meshes[part.shape])
            scene.collection.objects.link(obj)
            obj.material_slots[0].link = "OBJECT"  # meshes are shared, materials per object
            obj.material_slots[0].material = mats[part.material]
            self.objects[part.name] = obj

        cam = bpy.data.cameras.new("camera")
        cam.lens = camera.focal_length
        cam.sensor_width = 36.0
        cam.clip_end = 100.0
        self.camera = bpy.data.objects.new("camera", cam)
        scene.collection.objects.link(self.camera)
        scene.camera = self.camera
        sun = bpy.data.lights.new("sun", "SUN")
        sun.energy = 3.0
        sun.angle = math.radians(3.0)
        self.sun = bpy.data.objects.new("sun", sun)
        scene.collection.objects.link(self.sun)
        self._set_engine(spec.engine)

    def _set_engine(self, engine: str) -> None:
        scene = self.scene
        if engine == "cycles":
            scene.render.engine = "CYCLES"
            scene.cycles.device = "CPU"
            scene.cycles.samples = self.spec.samples
            scene.cycles.seed = 0
            scene.cycles.use_denoising = True
            scene.world.node_tree.nodes["Background"].inputs["Strength"].default_value = 1.5
            scene.view_settings.view_transform = "AgX"  # a camera-like tone curve
        else:
            scene.render.engine = "BLENDER_WORKBENCH"
            scene.view_settings.view_transform = "Standard"
            shading = scene.display.shading
            shading.light = "STUDIO"
            shading.color_type = "OBJECT"
            shading.show_shadows = True
            shading.shadow_intensity = 0.45
            shading.show_cavity = True  # darkened creases and lit edges: parts read as solids
            shading.cavity_type = "BOTH"
            shading.show_specular_highlight = True
            scene.display.render_aa = "8"

    def _apply(self, pose: Pose, nuisance: dict, id_colors: dict[str, tuple] | None) -> None:
        for name, obj in self.objects.items():
            state, part = pose[name], self.parts[name]
            obj.location = state.location
            obj.rotation_euler = state.rotation
            obj.scale = tuple(a * b for a, b in zip(part.size, state.scale))
            obj.hide_render = not state.visible
            if id_colors:
                color = id_colors[name]
            else:
                color = state.color or part.color
                if self.spec.style == "real":  # worn, dusty paint
                    color = tuple(0.78 * c + 0.08 for c in color)
            obj.color = (*color, 1.0)
        loc = Vector(self.camera_pose.location) + Vector(nuisance["camera_offset"])
        look = Vector(self.camera_pose.target) - loc
        rot = look.to_track_quat("-Z", "Y").to_euler()
        tilt = nuisance["camera_tilt"]
        self.camera.location = loc
        self.camera.rotation_euler = Euler((rot.x + tilt[0], rot.y + tilt[1], rot.z + tilt[2]))
        direction = Vector(nuisance["light_direction"]).normalized()
        self.scene.display.light_direction = direction
        self.sun.rotation_euler = direction.to_track_quat("Z", "Y").to_euler()

    def _render(self) -> np.ndarray:
        path = self._tmp / "frame.png"
        self.scene.render.filepath = str(path)
        with _quiet():
            bpy.ops.render.render(write_still=True)
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB")).copy()

    def render(self, pose: Pose, nuisance: dict) -> np.ndarray:
        """RGB frame (H, W, 3) uint8 of a pose under one frame's nuisances."""
        self._apply(pose, nuisance, None)
        view = self.scene.view_settings
        view.exposure = BASE_EXPOSURE[self.spec.engine] + nuisance["exposure"]
        view.white_balance_temperature = nuisance["temperature"]
        return self._render()

    def render_mask(self, pose: Pose, nuisance: dict, parts: set[str]) -> np.ndarray:
        """Boolean (H, W): pixels where one of `parts` is the front-most surface."""
        white, black = (1.0, 1.0, 1.0), (0.0, 0.0, 0.0)
        self._apply(pose, nuisance, {n: white if n in parts else black for n in self.objects})
        scene, shading, view = self.scene, self.scene.display.shading, self.scene.view_settings
        engine = self.spec.engine
        self._set_engine("workbench")
        shading.light, shading.show_shadows, shading.show_specular_highlight = "FLAT", False, False
        shading.show_cavity = False
        scene.display.render_aa = "OFF"
        scene.world.color = black
        view.exposure, view.use_white_balance = 0.0, False
        try:
            return self._render()[..., 0] > 127
        finally:
            scene.world.color = BACKGROUND
            view.use_white_balance = True
            self._set_engine(engine)

    def close(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)
