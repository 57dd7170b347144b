from django import template

from accounts.selectors import config_problems

register = template.Library()


@register.simple_tag
def accounts_config_problems() -> dict:
    return config_problems()
