"""GAN trainable: registered ingredients and the phase loop.

Layout (one registry per kind, one signature per kind, a paper reference per component):
``losses`` (LOSSES), ``regularizers/`` (REGULARIZERS: penalties, consistency, constraints),
``architectures/`` (ARCHITECTURES), ``conditioning`` (CONDITIONINGS), ``augment`` (AUGMENTATIONS)
with ``ada`` (fixed / adaptive augmentation probability), ``dynamic_d`` (DYNAMIC_D schedules);
``terms`` (what ingredients plug in: loss terms, hooks, state), ``phases`` (D_main, D_reg,
G_main, G_reg), ``rules`` (incompatible combinations, ``violations``), ``config`` (GanConfig),
``state`` (GanState: what a checkpoint holds) and ``trainable`` (``train_gan(ctx)``).
"""
