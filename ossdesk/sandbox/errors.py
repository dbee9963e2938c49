"""The errors the sandbox answers in OSS's XML format, and OSS's error codes (EC) for them."""

from __future__ import annotations

# OSS's error codes ("EC", in the error XML and the x-oss-ec header) for the errors the
# sandbox answers, keyed by (Code, Message) for an EC that belongs to one message only,
# (Code, None) for one that belongs to the code. Only codes seen in OSS's own answers are
# here; an error not in this table is answered without an EC (docs/SANDBOX.md lists them).
# Sources:
# - NoSuchKey 0026-00000001: OSS answers quoted in aliyun-oss-java-sdk's tests
#   (OSSException.getEC() for a missing key) and OSS's troubleshoot links
#   (https://api.aliyun.com/troubleshoot?q=0026-00000001).
# - NoSuchBucket 0015-00000101, SignatureDoesNotMatch 0002-00000040: the OSS answers
#   quoted in alibabacloud-oss-go-sdk-v2's tests (client_test.go, "The specified bucket
#   does not exist." / "The request signature we calculated does not match ...").
# - InvalidArgument "Invalid signing region in Authorization header." 0002-00000226: OSS's
#   answer (400) to a V4 request scoped to another region, quoted in
#   https://github.com/aliyun/alibabacloud-oss-go-sdk-v2/issues/29 and #85.
OSS_ERROR_EC: dict[tuple[str, str | None], str] = {
    ("NoSuchKey", None): "0026-00000001",
    ("NoSuchBucket", None): "0015-00000101",
    ("SignatureDoesNotMatch", None): "0002-00000040",
    ("InvalidArgument", "Invalid signing region in Authorization header."): "0002-00000226",
}


def oss_error_ec(code: str, message: str) -> str | None:
    """OSS's EC for this error, or None when no source for it is known."""
    return OSS_ERROR_EC.get((code, message)) or OSS_ERROR_EC.get((code, None))


class OssError(Exception):
    """An error answered to the client in OSS's XML format."""

    def __init__(self, status: int, code: str, message: str, **extra: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


def no_such_bucket(bucket: str) -> OssError:
    return OssError(404, "NoSuchBucket", "The specified bucket does not exist.", BucketName=bucket)


def no_such_key(key: str) -> OssError:
    return OssError(404, "NoSuchKey", "The specified key does not exist.", Key=key)


def no_such_upload(upload_id: str) -> OssError:
    return OssError(404, "NoSuchUpload",
                    "The specified upload does not exist. The upload ID may be invalid, or the "
                    "upload may have been aborted or completed.", UploadId=upload_id)
