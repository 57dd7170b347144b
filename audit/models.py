"""The append-only, hash-chained audit trail and the record of its verification."""
from django.db import models


class AppendOnlyError(Exception):
    """Audit events are written only by ``audit.services.audit_record`` and never changed or removed."""


def _refuse(what: str):
    raise AppendOnlyError(f"audit events are append-only: {what} refused (write them with audit.services.audit_record)")


class ActorType(models.TextChoices):
    USER = "user", "user"
    ADMIN = "admin", "admin"
    SYSTEM = "system", "system"
    SELLBOT = "sellbot", "sellbot"


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        _refuse("update")

    def _update(self, values):
        _refuse("update")

    def delete(self):
        _refuse("delete")

    def _raw_delete(self, using):
        _refuse("delete")

    def bulk_update(self, objs, fields, batch_size=None):
        _refuse("bulk_update")

    def bulk_create(self, objs, *args, **kwargs):
        _refuse("bulk_create")

    def update_or_create(self, *args, **kwargs):
        _refuse("update_or_create")


class AuditEvent(models.Model):
    seq = models.BigIntegerField(primary_key=True)
    at = models.DateTimeField("time (UTC)")
    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    actor_id = models.CharField(max_length=128, blank=True)
    action = models.CharField(max_length=64)
    account = models.ForeignKey("accounts.AlpacaAccount", on_delete=models.PROTECT, null=True, blank=True, related_name="audit_events", db_index=False)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=128, blank=True)
    data = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-seq"]
        # Each append writes every index: these serve the admin's filters and per-order lookups,
        # with no LIKE-pattern twins (admin search is icontains) and no single-column copies of a composite's lead.
        indexes = [
            models.Index(fields=["-at"], name="audit_event_at"),
            models.Index(fields=["account", "-at"], name="audit_event_account_at"),
            models.Index(fields=["action", "-at"], name="audit_event_action_at"),
            models.Index(fields=["actor_id"], name="audit_event_actor_id"),
            models.Index(fields=["object_id"], name="audit_event_object_id"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action}"

    def save(self, *args, **kwargs):
        _refuse("save" if self._state.adding else "update")

    def delete(self, *args, **kwargs):
        _refuse("delete")


class AuditChainHead(models.Model):
    """One row (pk 1): the last ``seq`` and ``hash``. Appends lock it, which serialises the chain."""

    SINGLETON = 1
    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON)
    seq = models.BigIntegerField()
    hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"head #{self.seq}"


class CheckSource(models.TextChoices):
    BEAT = "beat", "daily beat task"
    COMMAND = "command", "verify_audit_chain"
    ADMIN = "admin", "verify now (console)"


class AuditChainCheck(models.Model):
    ran_at = models.DateTimeField(db_index=True)
    ok = models.BooleanField()
    count = models.BigIntegerField(help_text="Events checked.")
    last_seq = models.BigIntegerField(null=True, blank=True)
    first_broken_seq = models.BigIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=300, blank=True)
    since_seq = models.BigIntegerField(null=True, blank=True, help_text="Set when only the chain from this seq on was checked.")
    duration_ms = models.PositiveIntegerField(default=0)
    source = models.CharField(max_length=8, choices=CheckSource.choices, default=CheckSource.BEAT)

    class Meta:
        ordering = ["-ran_at"]
        get_latest_by = "ran_at"

    def __str__(self) -> str:
        return f"{'OK' if self.ok else f'BROKEN at #{self.first_broken_seq}'} ({self.count} events) at {self.ran_at:%Y-%m-%d %H:%M:%S}"
