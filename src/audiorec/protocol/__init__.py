"""The evaluation protocol's data: the temporal split of a listening log (:mod:`.split`, over the (user, track)
pairs of :mod:`.pairs`; the journal version's rules in :mod:`.journal`) and the candidate set every ranking of a
table chooses from (:mod:`.candidates`).

What is relevant, what is heard and what may be ranked is decided here, once, for every model; the metrics that
score rankings live in :mod:`audiorec.evaluation`.
"""
