"""Demo data for ``manage.py seed_demo`` (``make run``): a staff user, sessions in every
status with their audit trail, schedules of every kind and a work token for the demo
agent. Everything goes through the apps' own services, so the demo trail is a real one."""

from demo.services.reviews import DEMO_QUEUE, demo_agent_token_issue, demo_reviews_seed
from demo.services.sessions import demo_sessions_seed
from demo.services.users import DEMO_PASSWORD, DEMO_USERNAME, demo_user_ensure

__all__ = [
    "DEMO_PASSWORD",
    "DEMO_QUEUE",
    "DEMO_USERNAME",
    "demo_agent_token_issue",
    "demo_reviews_seed",
    "demo_sessions_seed",
    "demo_user_ensure",
]
