"""The training stage: a config's Brevitas network trained quantization-aware (or calibrated
for post-training quantization) into a build folder's config.yaml, checkpoint.pt and
train.json, which `qflow export` takes from there. Everything here imports torch and
Brevitas; the stages after export do not, except where they load the trained model itself
(`trainer.load_trained`: export, verify's Brevitas forward, the report's SQNR section).

Modules: trainer (`qflow train`: the training loop, the partial folder, `load_trained`),
distributed (the same training as DDP ranks under torchrun), checkpoint (checkpoints as
data), models (the networks a config describes), quantizers (the quantizer options, as
Brevitas quantizers), lowprec (the training-only pieces of DoReFa and WAGE), reference
(Brevitas' forward as one of verify's references, flow.reference), config and examples.

config, the config schema, lives here because only training reads a config: `qflow train`,
and `qflow sweep` and `qflow explore` (flow.report), which train; export and verify read a
build's config.yaml through `trainer.load_trained`. It is built on the quantizer options
(quantizers), so it imports Brevitas anyway. examples holds Brevitas' own BNN-PYNQ
networks, untrained stand-ins for a trained model in tests and benchmarks. The datasets
stay at flow.data: every stage reads the test split (flow.inputs), without torch.
"""
