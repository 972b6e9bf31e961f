"""localstripe with the Connect objects the payout flow needs.

localstripe (1.15) simulates Stripe's charges, refunds and setups but has no
Connect: no connected accounts, account links or transfers. The payment
adapter's tests (payments/tests/stripe.rs) run the whole flow against it,
payouts included, so this adds those three as localstripe objects, stored
and listed like its own, and starts localstripe's server as its
`localstripe` command does. Nothing else of localstripe changes.

  python localstripe_connect.py --port 8420 --from-scratch
"""

from localstripe import server
from localstripe.errors import UserError
from localstripe.resources import StripeObject, try_convert_to_int


class Account(StripeObject):
    """A connected account: ready for transfers as soon as it is made."""

    object = 'account'
    _id_prefix = 'acct_'

    def __init__(self, type=None, capabilities=None, metadata=None, country=None, email=None, **kwargs):
        if kwargs:
            raise UserError(400, 'Unexpected ' + ', '.join(kwargs.keys()))
        if type not in ('express', 'standard', 'custom'):
            raise UserError(400, 'Bad request: type')
        super().__init__()
        self.type = type
        self.country = country or 'US'
        self.email = email
        self.metadata = metadata or {}
        requested = capabilities or {}
        self.capabilities = {name: 'active' for name in requested}
        self.payouts_enabled = True
        self.charges_enabled = True


class AccountLink(StripeObject):
    """An onboarding link (not stored by Stripe either: made, returned)."""

    object = 'account_link'
    _id_prefix = 'acctlink_'

    def __init__(self, account=None, type=None, refresh_url=None, return_url=None, **kwargs):
        if kwargs:
            raise UserError(400, 'Unexpected ' + ', '.join(kwargs.keys()))
        Account._api_retrieve(account)  # 404 for an unknown account
        if type not in ('account_onboarding', 'account_update') or not refresh_url or not return_url:
            raise UserError(400, 'Bad request')
        super().__init__()
        self.url = 'https://connect.localstripe.invalid/setup/' + account


class Transfer(StripeObject):
    """Money sent to a connected account; `reversals` take it back."""

    object = 'transfer'
    _id_prefix = 'tr_'

    def __init__(self, amount=None, currency=None, destination=None, metadata=None,
                 transfer_group=None, description=None, **kwargs):
        if kwargs:
            raise UserError(400, 'Unexpected ' + ', '.join(kwargs.keys()))
        amount = try_convert_to_int(amount)
        if type(amount) is not int or amount <= 0 or not currency:
            raise UserError(400, 'Bad request: amount and currency')
        Account._api_retrieve(destination)  # 404 for an unknown account
        super().__init__()
        self.amount = amount
        self.currency = currency
        self.destination = destination
        self.metadata = metadata or {}
        self.transfer_group = transfer_group
        self.description = description
        self.amount_reversed = 0
        self.reversed = False

    @classmethod
    def _api_list_all(cls, url, destination=None, limit=None, starting_after=None, **kwargs):
        li = super()._api_list_all(url, limit=limit, starting_after=starting_after, **kwargs)
        if destination is not None:
            li._list = [t for t in li._list if t.destination == destination]
        li._list.sort(key=lambda t: t.created, reverse=True)
        return li

    @classmethod
    def _api_reverse(cls, id, amount=None, **kwargs):
        transfer = cls._api_retrieve(id)
        amount = try_convert_to_int(amount) if amount is not None else transfer.amount - transfer.amount_reversed
        if type(amount) is not int or amount <= 0 or transfer.amount_reversed + amount > transfer.amount:
            raise UserError(400, 'Bad request: amount')
        transfer.amount_reversed += amount
        transfer.reversed = transfer.amount_reversed == transfer.amount
        return transfer


def add_routes(app):
    """The objects' routes, as localstripe adds its own."""
    for cls in (Account, Transfer):
        plural = '/v1/' + cls.object + 's'
        app.router.add_route('POST', plural, server.api_create(cls, plural))
        app.router.add_route('GET', plural + '/{id}', server.api_retrieve(cls, plural + '/{id}'))
        app.router.add_route('GET', plural, server.api_list_all(cls, plural))
    app.router.add_route('POST', '/v1/account_links', server.api_create(AccountLink, '/v1/account_links'))
    reversals = '/v1/transfers/{id}/reversals'
    app.router.add_route('POST', reversals, server.api_extra(Transfer._api_reverse, reversals))


if __name__ == '__main__':
    add_routes(server.app)
    server.start()
