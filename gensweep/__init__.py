"""gensweep: distributed training and ablation search of generative models on Ray."""

__version__ = "0.1.0"
