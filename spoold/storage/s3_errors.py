"""How spoold reads botocore's errors: which mean "missing", "lost the race",
"misconfigured" (a start-up error, never an empty index)."""

from __future__ import annotations

import botocore.exceptions

__all__ = ["LOST_RACE", "MISCONFIGURED", "code_of", "lost_race", "missing", "status_of"]

#: Codes meaning "someone else changed it between our read and our write".
LOST_RACE = {"PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey", "412", "409"}
MISCONFIGURED = {
    "NoSuchBucket": "the bucket does not exist",
    "AccessDenied": "access denied (check the credentials and the bucket policy)",
    "InvalidAccessKeyId": "the access key is not valid (check the AWS credentials)",
    "SignatureDoesNotMatch": "the secret key is not valid (check the AWS credentials)",
    "AuthorizationHeaderMalformed": "the region does not match the bucket's region",
    "PermanentRedirect": "the region does not match the bucket's region",
}


def code_of(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def status_of(exc: botocore.exceptions.ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def missing(exc: botocore.exceptions.ClientError) -> bool:
    """The key is not there -- not "the bucket is not there", which is also a 404 but
    means the storage is misconfigured, never an empty index."""
    if code_of(exc) == "NoSuchBucket":
        return False
    return code_of(exc) in ("NoSuchKey", "404", "NotFound") or status_of(exc) == 404


def lost_race(exc: botocore.exceptions.ClientError) -> bool:
    return code_of(exc) in LOST_RACE or status_of(exc) in (409, 412)
