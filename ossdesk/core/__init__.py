"""The upload engine: planning, checksums, bandwidth limit, the OSS client, checkpoints.

Nothing below this package imports Qt: the command line and the window drive it the same way.
"""
