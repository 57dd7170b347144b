from django import template

from audit.selectors import compliance_status

register = template.Library()


@register.simple_tag
def audit_compliance_status() -> dict:
    return compliance_status()
