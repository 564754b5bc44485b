# Each target creates or reuses its virtual environment (tools/setup_env.sh) before it runs:
# .venv/ for the pinned stack, .venv-classic/ for the classic MMDetection 3.3 stack.
PY := .venv/bin/python
CLASSIC_PY := .venv-classic/bin/python

.PHONY: setup setup-classic test test-classic demo gpu

setup:
	bash tools/setup_env.sh

setup-classic:
	bash tools/setup_env.sh --stack classic

test: setup
	$(PY) -m pytest tests

# The lean subset marked `classic` (tests/conftest.py), on torch 2.1.2 and NumPy 1.26.4.
test-classic: setup-classic
	$(CLASSIC_PY) -m pytest -m classic tests

demo: setup
	$(PY) tools/run_demo.py

# On a machine with a CUDA GPU: the GPU tests (2x C4 trained 300 iterations, killed and
# resumed, evaluated; AMP), then the measurements of the GPU benchmarks.
GPU_OUT := docs/benchmarks
gpu: setup
	$(PY) -m pytest -m gpu -s tests
	$(PY) tools/benchmark.py train configs/faster_rcnn_shufflenet2x_coco.py \
	    configs/faster_rcnn_shufflenet1x_fpn_coco.py \
	    mmdet::faster_rcnn/faster-rcnn_r50-caffe_c4-1x_coco.py \
	    configs/pretrain/shufflenet1x_g3_imagenet.py --device cuda --amp --iters 50 --warmup 5 \
	    --out-md $(GPU_OUT)/gpu_training.md --out-json $(GPU_OUT)/gpu_training.json
	$(PY) tools/benchmark.py detector configs/faster_rcnn_shufflenet2x_coco.py \
	    configs/faster_rcnn_shufflenet1x_fpn_300_coco.py --device cuda --threads 1 \
	    --repeats 50 --out-md $(GPU_OUT)/gpu_latency.md --out-json $(GPU_OUT)/gpu_latency.json
	$(PY) tools/benchmark.py loader configs/pretrain/shufflenet1x_g3_imagenet.py \
	    --synthetic 500 --workers 0 4 8 --images 2000 \
	    --out-md $(GPU_OUT)/gpu_machine_loader.md --out-json $(GPU_OUT)/gpu_machine_loader.json
