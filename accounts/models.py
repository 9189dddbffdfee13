"""Users. A custom user model from the first migration, so that privileges, password expiry
and the physician-name match can be added without swapping the model later."""

from django.contrib.auth.models import AbstractUser

ROOT_USERNAME = "root"


class User(AbstractUser):
    """A person who logs in. First and last name matter: they are matched against the
    Referring and Reading Physician names of private studies (DESIGN.md, visibility rules)."""

    @property
    def is_root(self) -> bool:
        return self.username == ROOT_USERNAME
