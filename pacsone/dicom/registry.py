"""The remote AE registry as the DICOM services see it."""

from ..models import RemoteAE


def registered_ae_titles() -> list[str]:
    return list(RemoteAE.objects.values_list("ae_title", flat=True))


def may_store(ae_title: str) -> bool:
    return RemoteAE.objects.filter(ae_title=ae_title, may_store=True).exists()
