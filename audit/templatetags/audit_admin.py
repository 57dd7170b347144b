from django import template

from audit.selectors import chain_status

register = template.Library()


@register.simple_tag
def audit_chain_status() -> dict:
    return chain_status()
