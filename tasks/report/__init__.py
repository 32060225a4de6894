"""The release's human-readable report (report/index.html with SVG charts) and CHANGES.md."""
