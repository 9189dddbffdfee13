"""Templates ask the same privilege check as views: `{% load privileges %}`,
`{% if user|can:"download" %}`."""

from django import template

from accounts.privileges import has_privilege

register = template.Library()


@register.filter
def can(user, privilege: str) -> bool:
    return has_privilege(user, privilege)
