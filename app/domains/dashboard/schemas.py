from pydantic import BaseModel, Field

from app.core.types import MoneyTotal
from app.domains.orders.schemas import OrderRead
from app.domains.posts.schemas import PostRead


class DashboardStats(BaseModel):
    order_count: int = Field(description="every order you placed, cancelled ones included")
    total_spent: MoneyTotal = Field(description="the totals of your orders that were not cancelled")


class Dashboard(BaseModel):
    stats: DashboardStats
    recent_orders: list[OrderRead] = Field(description="your five newest orders")
    recent_posts: list[PostRead] = Field(description="your five newest posts")
