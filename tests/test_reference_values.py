"""Every registered component against values derived independently from its paper's formula
(gensweep.testing.reference)."""
from gensweep.testing.reference import ReferenceSuite


class TestReferenceValues(ReferenceSuite):
    pass
