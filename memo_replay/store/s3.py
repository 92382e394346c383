"""Blobs in an S3-compatible object store (AWS S3, MinIO, R2, GCS interoperability, Ceph).

:class:`S3Bucket` is a :class:`~memo_replay.store.backend.Backend` over ``s3://bucket/prefix``:
the blob ``pkg.f/<key>.json`` is the object ``<prefix>/pkg.f/<key>.json``, with the same bytes
as on disk, so a bucket can be read with any S3 tool (and filled with ``aws s3 sync``).

- Endpoint, region and credentials come only from the standard AWS chain (``AWS_ENDPOINT_URL``,
  ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE`` and ``~/.aws``, instance and
  task roles, ``AWS_REGION``/``AWS_DEFAULT_REGION``): memo_replay has no setting of its own that
  could hold a secret, and its messages never include one.
- The client (botocore, the ``s3`` extra) is imported when an :class:`S3Bucket` is created,
  never by ``import memo_replay`` or the store modules.
- Writes are write-once per name (``If-None-Match: *``): blobs are content-addressed by key, so
  an identical object already there is success, and a different one is an error naming it.
- Requests time out quickly (2 s to connect, 5 s to read, two retries by default;
  ``remote_timeout``/``MEMO_REMOTE_TIMEOUT`` sets the read timeout, see :func:`bucket_for`):
  a remote is a shared cache, and waiting on it must never cost more than calling the function.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from memo_replay.errors import RemoteError, RemoteUnavailable, StoreError
from memo_replay.store.backend import BlobTooLarge, Stamp

CREDENTIALS_HINT = ("check the credentials of the standard AWS chain (AWS_ACCESS_KEY_ID and "
                    "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or the instance role) and that they "
                    "may use this bucket")
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})
_DENIED = frozenset({"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
                     "ExpiredToken", "InvalidToken", "TokenRefreshRequired", "AllAccessDisabled",
                     "AccountProblem", "InvalidSecurity"})
_CONFLICT = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})


def check_name(name: str, *, prefix: bool = False) -> str:
    """``name`` when it is a blob name that stays under the store's prefix: ``/``-separated
    components, none empty, ``.`` or ``..``, no leading ``/``, no backslash or control
    character. A listing ``prefix`` may be empty or end with ``/``."""
    body = name[:-1] if prefix and name.endswith("/") else name
    if prefix and not body:
        return name
    if (not body or body.startswith("/") or "\\" in body
            or any(ord(c) < 32 or ord(c) == 127 for c in body)
            or any(part in ("", ".", "..") for part in body.split("/"))):
        raise StoreError(f"refused the blob name {name!r}: a name in a remote store is "
                         f"'/'-separated components, none empty, '.' or '..', so that it can "
                         f"never name an object outside the store's prefix")
    return name


def parse_url(url: str) -> tuple[str, str]:
    """``(bucket, prefix)`` of ``s3://bucket/prefix`` (the prefix without its slashes; it may
    be empty)."""
    scheme, sep, rest = url.partition("://")
    bucket, _, prefix = rest.partition("/")
    prefix = prefix.strip("/")
    if scheme != "s3" or not sep or not bucket:
        raise RemoteError(f"the remote {url!r} is not an S3 URL: write it s3://bucket/prefix "
                          f"(the prefix is optional)")
    if prefix:
        try:
            check_name(prefix)
        except StoreError:
            raise RemoteError(f"the remote {url!r} has an invalid prefix {prefix!r}: write it "
                              f"s3://bucket/a/b, without empty, '.' or '..' parts") from None
    return bucket, prefix


class S3Bucket:
    """Blobs as objects under ``s3://bucket/prefix`` (see the module docstring).

    ``connect_timeout`` and ``read_timeout`` are in seconds; ``retries`` is how many times a
    failed request is tried again (0: once only). Creating one makes no request.
    """

    def __init__(self, url: str, *, connect_timeout: float = 2.0, read_timeout: float = 5.0,
                 retries: int = 2) -> None:
        self.bucket, self.prefix = parse_url(url)
        self.location = f"s3://{self.bucket}/{self.prefix}" if self.prefix \
            else f"s3://{self.bucket}"
        self._base = f"{self.prefix}/" if self.prefix else ""
        self._bucket_seen = False
        self._client: Any = _make_client(connect_timeout, read_timeout, retries)
        self._errors: Any = _botocore_exceptions()

    def __repr__(self) -> str:
        return f"S3Bucket({self.location!r})"

    @property
    def endpoint(self) -> str:
        """The endpoint requests go to (from ``AWS_ENDPOINT_URL`` or the region)."""
        return str(self._client.meta.endpoint_url)

    def where(self, name: str) -> str:
        return f"{self.location}/{name}"

    def _key(self, name: str) -> str:
        return self._base + check_name(name)

    # -- reading -----------------------------------------------------------------------------

    def _head(self, name: str) -> dict[str, Any] | None:
        key = self._key(name)
        try:
            head: dict[str, Any] = self._call("head_object", self.where(name),
                                              Bucket=self.bucket, Key=key)
        except _Missing:
            self._check_bucket()  # a HEAD's 404 has no body: a missing bucket looks the same
            return None
        return head

    def stamp(self, name: str) -> Stamp | None:
        head = self._head(name)
        return None if head is None else (_etag(head), int(head.get("ContentLength", 0)))

    def size(self, name: str) -> int | None:
        head = self._head(name)
        return None if head is None else int(head.get("ContentLength", 0))

    def read(self, name: str, *, limit: int | None = None) -> bytes | None:
        read = self.read_stamped(name, limit=limit)
        return None if read is None else read[0]

    def read_stamped(self, name: str, *, limit: int | None = None
                     ) -> tuple[bytes, Stamp] | None:
        key = self._key(name)
        try:
            got = self._call("get_object", self.where(name), Bucket=self.bucket, Key=key)
        except _Missing:
            return None
        body = got["Body"]
        try:
            size = int(got.get("ContentLength", 0))
            if limit is not None and size > limit:
                # Refused from the headers: the body is never read (closing drops the
                # connection instead of draining it).
                raise BlobTooLarge(f"{self.where(name)} is {size} bytes, above the bound of "
                                   f"{limit}")
            try:
                data: bytes = body.read() if limit is None else body.read(limit + 1)
            except self._errors.BotoCoreError as exc:
                raise self._translate(exc, self.where(name), "get_object") from exc
            if limit is not None and len(data) > limit:
                raise BlobTooLarge(f"{self.where(name)} grew above the bound of {limit} bytes "
                                   f"while read")
        finally:
            body.close()
        return data, (_etag(got), len(data))

    def names(self, prefix: str = "") -> Iterator[str]:
        return (name for name, _ in self.listing(prefix))

    def listing(self, prefix: str = "") -> Iterator[tuple[str, int]]:
        """``(name, size)`` of every blob under ``prefix``, sorted by name, from the LIST
        responses alone (one request per 1,000 objects; no request per object)."""
        check_name(prefix, prefix=True)
        found: list[tuple[str, int]] = []
        token: str | None = None
        start = len(self._base)
        what = self.where(prefix) if prefix else self.location
        while True:
            page: dict[str, Any] = self._call(
                "list_objects_v2", what, Bucket=self.bucket, Prefix=self._base + prefix,
                **({"ContinuationToken": token} if token else {}))
            # A key ending in "/" is a "folder" some consoles create, never a blob.
            found += [(item["Key"][start:], int(item.get("Size", 0)))
                      for item in page.get("Contents", ())
                      if not item["Key"].endswith("/")]
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                break
        found.sort()  # S3 lists in UTF-8 byte order; Tiered merges listings sorted as str
        return iter(found)

    # -- writing -----------------------------------------------------------------------------

    def write(self, name: str, data: bytes) -> None:
        key = self._key(name)
        for _ in range(3):
            try:
                self._call("put_object", self.where(name), Bucket=self.bucket, Key=key, Body=data,
                           IfNoneMatch="*")
                return
            except _Conflict:
                pass
            # Something is there (or was being written at the same moment): the same bytes
            # are the same recording; anything else must not be overwritten.
            existing = self.read(name)
            if existing is None:
                continue  # deleted since: try again
            if existing == data:
                return
            raise RemoteError(
                f"cannot write {self.where(name)}: a different object is already there "
                f"({len(existing)} bytes there, {len(data)} bytes written). Names are "
                f"content-addressed, so it was changed by hand or by a bug; nothing was "
                f"overwritten. Inspect it, delete it if it is damaged, then write again.")
        raise RemoteError(f"cannot write {self.where(name)}: the object kept changing while "
                          f"written (written and deleted concurrently); nothing was overwritten")

    def delete(self, name: str) -> bool:
        if self._head(name) is None:
            return False
        self._call("delete_object", self.where(name), Bucket=self.bucket, Key=self._key(name))
        return True

    # -- errors ------------------------------------------------------------------------------

    def _check_bucket(self) -> None:
        if not self._bucket_seen:
            try:
                self._call("head_bucket", self.location, Bucket=self.bucket)
            except _Missing:
                raise self._no_bucket() from None
            self._bucket_seen = True

    def _no_bucket(self) -> RemoteError:
        return RemoteError(f"the bucket {self.bucket!r} of the remote {self.location} does not "
                           f"exist at {self.endpoint}: check the bucket name in the remote URL, "
                           f"and AWS_ENDPOINT_URL and the region (AWS_REGION) if it is "
                           f"elsewhere")

    def _call(self, operation: str, what: str, **params: Any) -> Any:
        """One request; a missing object is :class:`_Missing`, a failed write condition
        :class:`_Conflict`, everything else a :class:`RemoteError` naming what to fix."""
        try:
            return getattr(self._client, operation)(**params)
        except (self._errors.ClientError, self._errors.BotoCoreError) as exc:
            raise self._translate(exc, what, operation) from exc

    def _translate(self, exc: Exception, what: str, operation: str) -> Exception:
        errors = self._errors
        if isinstance(exc, errors.ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
            if code == "NoSuchBucket":
                return self._no_bucket()
            if code in _MISSING or (not code and status == "404"):
                return _Missing()
            if operation == "put_object" and (code in _CONFLICT or status in _CONFLICT):
                return _Conflict()
            if code in _DENIED or status == "403":
                return RemoteError(f"access to {what} was refused ({code or status}): "
                                   f"{CREDENTIALS_HINT}")
            return RemoteError(f"the remote {self.location} refused {operation} of {what}: "
                               f"{code or status} {error.get('Message', '')}".rstrip())
        if isinstance(exc, errors.NoCredentialsError | errors.PartialCredentialsError):
            return RemoteError(f"no usable AWS credentials for {self.location}: "
                               f"{CREDENTIALS_HINT}")
        if isinstance(exc, errors.ConnectionError | errors.HTTPClientError):
            # EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, …
            return RemoteUnavailable(
                f"the remote {self.location} is unreachable at {self.endpoint} "
                f"({type(exc).__name__}): check AWS_ENDPOINT_URL (or the region) and the "
                f"network; nothing was read or written there")
        return RemoteError(f"the remote {self.location} failed on {operation} of {what}: "
                           f"{type(exc).__name__}: {exc}")


class _Missing(Exception):
    """No such object (internal: becomes None)."""


class _Conflict(Exception):
    """A conditional write found an object (internal: the write compares it)."""


def bucket_for(url: str, timeout: float) -> S3Bucket:
    """The bucket of ``url`` with ``timeout`` seconds to read an answer (the ``remote_timeout``
    setting) and the smaller of 2 s and it to connect."""
    return S3Bucket(url, connect_timeout=min(2.0, timeout), read_timeout=timeout)


def _etag(response: dict[str, Any]) -> str:
    return str(response.get("ETag", "")).strip('"')


def _botocore_exceptions() -> Any:
    import botocore.exceptions

    return botocore.exceptions


def _make_client(connect_timeout: float, read_timeout: float, retries: int) -> Any:
    """A botocore S3 client configured only by the standard AWS chain, with short timeouts."""
    try:
        import botocore.config
        import botocore.exceptions
        import botocore.session
    except ImportError:
        raise RemoteError('a remote s3:// store needs the S3 client: pip install '
                          '"memo-replay[s3]"') from None
    config = botocore.config.Config(
        connect_timeout=connect_timeout, read_timeout=read_timeout,
        retries={"total_max_attempts": 1 + max(retries, 0), "mode": "standard"},
        # Checksums only where S3 requires them: S3-compatible stores (MinIO, R2, Ceph) do not
        # all accept the CRC headers botocore sends by default since 1.36.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    try:
        return botocore.session.Session().create_client("s3", config=config)
    except botocore.exceptions.ProfileNotFound as exc:
        raise RemoteError(f"the AWS profile {exc.kwargs.get('profile')!r} does not exist: "
                          f"check AWS_PROFILE and ~/.aws/config") from None
    except botocore.exceptions.BotoCoreError as exc:
        raise RemoteError(f"cannot configure the S3 client from the AWS settings "
                          f"(AWS_ENDPOINT_URL, AWS_REGION, AWS_PROFILE, ~/.aws/config): "
                          f"{exc}") from None


__all__ = ["S3Bucket", "bucket_for", "check_name", "parse_url"]
