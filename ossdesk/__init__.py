"""ossdesk: a desktop uploader for Alibaba Cloud OSS that never loses its place."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ossdesk")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

APP_NAME = "ossdesk"
APP_AUTHOR = "ossdesk"

__all__ = ["APP_AUTHOR", "APP_NAME", "__version__"]
