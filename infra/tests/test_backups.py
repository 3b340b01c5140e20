"""The backup bucket (spec 10.2, 11.1)."""

from __future__ import annotations

from stack_record import Resource, StackRecord


def backup_bucket(stack: StackRecord) -> Resource:
    return next(b for b in stack.of_type("s3/bucket") if b.state["bucket"] == stack.output("backupBucket"))


def attached(stack: StackRecord, token: str) -> Resource:
    bucket = backup_bucket(stack)
    (found,) = [r for r in stack.of_type(token) if r.refers_to("bucket") == [bucket.urn]]
    return found


def test_backup_bucket_is_versioned_encrypted_and_private(prod: StackRecord) -> None:
    assert attached(prod, "s3/bucketVersioning")["versioningConfiguration"] == {"status": "Enabled"}
    sse = attached(prod, "s3/bucketServerSideEncryptionConfiguration")
    assert sse["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    block = attached(prod, "s3/bucketPublicAccessBlock")
    assert all(block[k] for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))


def test_backups_move_to_glacier_after_30_days(prod: StackRecord) -> None:
    (rule,) = attached(prod, "s3/bucketLifecycleConfiguration")["rules"]
    assert rule["status"] == "Enabled"
    assert rule["transitions"] == [{"days": 30, "storageClass": "GLACIER"}]
    assert rule["noncurrentVersionTransitions"] == [{"noncurrentDays": 30, "storageClass": "GLACIER"}]


def test_backup_bucket_refuses_plain_http(prod: StackRecord) -> None:
    (deny,) = attached(prod, "s3/bucketPolicy").json("policy")["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_prod_buckets_survive_destroy_dev_buckets_do_not(prod: StackRecord, dev: StackRecord) -> None:
    assert backup_bucket(prod)["forceDestroy"] is False
    assert backup_bucket(dev)["forceDestroy"] is True
