# Each target creates .venv when missing and installs the project into it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

# The demo: a lifter scene with logic anomalies, the tiny detector trained on it, scored.
DEMO := demo_out
SCENE := $(DEMO)/data/lifter-logic

# Both tools and the tests ([gen] is bpy, [detect] torch & co.), at the exact versions of constraints.txt.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[gen,detect,test]'
	touch $(STAMP)

$(SCENE)/scene.json: | $(STAMP)
	$(VENV)/bin/ipadgen render --device lifter --anomalies logic --out $(DEMO)/data \
		--scene-name lifter-logic --train-videos 3 --test-videos 3 --cycles 3

demo: $(SCENE)/scene.json
	$(VENV)/bin/ipadgen preview $(SCENE) --out $(DEMO)/preview.png
	$(VENV)/bin/ipad-detect train --data $(DEMO)/data --scene lifter-logic --config tiny \
		--epochs 3 --stride 2 --out $(DEMO)/run
	$(VENV)/bin/ipad-detect evaluate --data $(DEMO)/data --scene lifter-logic \
		--checkpoint $(DEMO)/run --out $(DEMO)/evaluation.json
	$(VENV)/bin/ipad-detect score $(SCENE)/testing/frames/01 --checkpoint $(DEMO)/run \
		--out $(DEMO)/score
	@echo "demo done: frames in $(SCENE), contact sheet $(DEMO)/preview.png,"
	@echo "  AUC in $(DEMO)/evaluation.json, score curve in $(DEMO)/score/"

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) bench/render.py
	$(PY) bench/detect.py

clean:
	rm -rf $(VENV) ipad_out $(DEMO)
