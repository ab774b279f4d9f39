"""RLAIF Studio's machine-learning code: plain Python, no Django.

Generation, judges, the labeling protocol, reward-model training, RL fine-tuning and evaluation take plain
inputs, return plain results and report progress and metrics through a :class:`training.progress.Reporter`.
"""
