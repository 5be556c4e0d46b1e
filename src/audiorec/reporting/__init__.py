"""What a reader sees: the results table and its blocks (:mod:`.report`), the figures (:mod:`.figures`), the
layer sweep (:mod:`.layer_sweep`), the MIR-versus-recommendation table (:mod:`.mir_vs_recs`) and the SSL table
(:mod:`.ssl_table`).

The top of the library: it reads metrics and tests from :mod:`audiorec.evaluation` and, for the layer sweep, ranks
with :mod:`audiorec.recommenders`.
"""
