"""The contract every backbone and recommender kind must keep, as checks a plugin's author runs on their own kind.

``audiorec check backbone TARGET`` and ``audiorec check recommender TARGET`` run the same checks the built-in kinds
pass (:mod:`.backbone`, :mod:`.recommender`) and print one line per check with the reason of each failure
(:mod:`.results`). Above the models, the extraction driver and the demo world, which the checks run them through.
"""
