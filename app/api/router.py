"""Mounts every versioned router under /api/v1."""

from fastapi import APIRouter

from app.api.v1 import auth, orders, users

api_router = APIRouter(prefix="/api/v1")
api_router.include_router(auth.router)
api_router.include_router(users.router)
api_router.include_router(orders.router)
