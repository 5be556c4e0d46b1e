"""Measures: ranking metrics per user (:mod:`.metrics`), intervals and paired tests (:mod:`.stats`,
:mod:`.significance`), the controls that make a row interpretable (:mod:`.controls`), and the MIR probes
(:mod:`.probes`, :mod:`.playlists`).

Arrays and DataFrames in, numbers out: it imports no model, so recommenders can validate with the same metrics the
tables report.
"""
