"""Operations around the pipeline: run summaries, alerts, the files server, Prefect.

The top of the ``tasks`` tree: these modules may read everything below and
nothing below imports them.
"""
