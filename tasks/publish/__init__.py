"""Publish: gather validated snapshots, score them and write a release.

``release`` is the publishing step; ``proxies`` derives proxy indicators;
``analysis`` adds the distance to the printed 2020 index; ``sample`` makes the
bundled offline sample.
"""
