# Both targets create or reuse .venv/ (tools/setup_env.sh) before they run.
PY := .venv/bin/python

.PHONY: setup test demo gpu

setup:
	bash tools/setup_env.sh

test: setup
	$(PY) -m pytest tests

demo: setup
	$(PY) tools/run_demo.py

# On a machine with a CUDA GPU: the GPU tests (2x C4 trained 300 iterations, killed and
# resumed, evaluated; AMP), then the measurements of the README's GPUs section.
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
