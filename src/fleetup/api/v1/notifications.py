"""Notification channels, subscriptions and the delivery log.

Everyone manages their own channels under ``/me``; admins and managers manage anyone's.
The delivery log is for the people who run the project (manager, on-call, admin).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from sqlalchemy.orm import Session

from fleetup.api.access import READERS, GuardedRoute, allow
from fleetup.api.deps import current_principal, db, write_context
from fleetup.api.schemas import MAX_ROW_ID, PageOut, RowId
from fleetup.core.context import Ctx
from fleetup.core.security import Principal, Role
from fleetup.notify import service
from fleetup.notify.schemas import NotificationOut, SubscriptionIn, SubscriptionOut, TestSent

router = APIRouter(route_class=GuardedRoute, tags=["notifications"])
anyone = allow(*READERS)
managers = allow(Role.manager)
log_readers = allow(Role.manager, Role.on_call)


@router.get("/me/subscriptions", response_model=list[SubscriptionOut], dependencies=[anyone])
def my_subscriptions(
    principal: Principal = Depends(current_principal), session: Session = Depends(db)
) -> list[SubscriptionOut]:
    rows = service.get_subscriptions(session, username=principal.username)
    return [SubscriptionOut.model_validate(row) for row in rows]


@router.post(
    "/me/subscriptions",
    response_model=SubscriptionOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[anyone],
)
def add_my_subscription(
    data: SubscriptionIn,
    principal: Principal = Depends(current_principal),
    ctx: Ctx = Depends(write_context),
) -> SubscriptionOut:
    row = service.add_subscription(
        ctx, username=principal.username, url=data.url, language=data.language
    )
    ctx.session.commit()
    return SubscriptionOut.model_validate(row)


@router.delete(
    "/me/subscriptions/{subscription_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[anyone],
)
def remove_my_subscription(
    subscription_id: RowId,
    principal: Principal = Depends(current_principal),
    ctx: Ctx = Depends(write_context),
) -> Response:
    service.remove_subscription(ctx, username=principal.username, subscription_id=subscription_id)
    ctx.session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/me/test-notification", response_model=TestSent, dependencies=[anyone])
def send_me_a_test(
    principal: Principal = Depends(current_principal), ctx: Ctx = Depends(write_context)
) -> TestSent:
    queued = service.send_test(ctx, username=principal.username)
    ctx.session.commit()
    return TestSent(queued=queued)


@router.get(
    "/users/{username}/subscriptions",
    response_model=list[SubscriptionOut],
    dependencies=[managers],
)
def user_subscriptions(username: str, session: Session = Depends(db)) -> list[SubscriptionOut]:
    rows = service.get_subscriptions(session, username=username)
    return [SubscriptionOut.model_validate(row) for row in rows]


@router.post(
    "/users/{username}/subscriptions",
    response_model=SubscriptionOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[managers],
)
def add_user_subscription(
    username: str, data: SubscriptionIn, ctx: Ctx = Depends(write_context)
) -> SubscriptionOut:
    row = service.add_subscription(ctx, username=username, url=data.url, language=data.language)
    ctx.session.commit()
    return SubscriptionOut.model_validate(row)


@router.delete(
    "/users/{username}/subscriptions/{subscription_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[managers],
)
def remove_user_subscription(
    username: str, subscription_id: RowId, ctx: Ctx = Depends(write_context)
) -> Response:
    service.remove_subscription(ctx, username=username, subscription_id=subscription_id)
    ctx.session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/notifications", response_model=PageOut[NotificationOut], dependencies=[log_readers])
def list_notifications(
    session: Session = Depends(db),
    status_: Annotated[str | None, Query(alias="status")] = None,
    template: str | None = None,
    recipient: str | None = None,
    key: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ROW_ID)] = 0,
) -> PageOut[NotificationOut]:
    rows, total = service.get_all(
        session,
        status=status_,
        template=template,
        recipient=recipient,
        key=key,
        limit=limit,
        offset=offset,
    )
    return PageOut[NotificationOut](
        items=[NotificationOut.model_validate(row) for row in rows],
        total=total,
        limit=limit,
        offset=offset,
    )
