"""Audio signals: decoding to mono float32 at a rate (:mod:`.decode`), librosa-exact power spectrograms
(:mod:`.spectrum`) and the windows models read (:mod:`.windows`).

Pure signal processing, below the models that read it (backbones and self-supervised training cut tracks with the
same functions); it imports no other audiorec package.
"""
