from django import template

from accounts.selectors import compliance_status

register = template.Library()


@register.simple_tag
def accounts_compliance_status() -> dict:
    return compliance_status()
