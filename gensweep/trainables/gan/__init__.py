"""GAN trainable: registered losses, regularizers, architectures, augmentations and the phase loop."""
