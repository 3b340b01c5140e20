from __future__ import annotations

from fastapi import APIRouter

from sage.api.deps import CurrentUser
from sage.api.schemas import UserOut

router = APIRouter(prefix="/users", tags=["users"])


@router.get("/me", response_model=UserOut)
async def me(user: CurrentUser) -> UserOut:
    return UserOut.model_validate(user)
