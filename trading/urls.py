from django.urls import path

from .views import accounts, manage, market, orders

urlpatterns = [
    # the routes a desk calls most come first: Django tries the patterns in order (none of these overlap)
    path("stocks/order", orders.StockOrderView.as_view(), name="stock-order"),
    path("stocks/<str:symbol>/quote", market.StockQuoteView.as_view(), name="stock-quote"),
    path("options/order", orders.OptionOrderView.as_view(), name="option-order"),
    path("account", accounts.AccountView.as_view(), name="account"),
    path("positions", accounts.PositionsView.as_view(), name="positions"),
    path("positions/<str:symbol>", manage.PositionCloseView.as_view(), name="position-close"),
    path("admin/flatten", manage.FlattenView.as_view(), name="admin-flatten"),
    path("stocks/quotes/batch", market.StockQuotesBatchView.as_view(), name="stock-quotes-batch"),
    path("stocks/<str:symbol>/bars", market.StockBarsView.as_view(), name="stock-bars"),
    path("stocks/<str:symbol>/buy", orders.QuickBuyView.as_view(), name="stock-quick-buy"),
    path("stocks/<str:symbol>/sell", orders.QuickSellView.as_view(), name="stock-quick-sell"),
    path("options/quotes/batch", market.OptionQuotesBatchView.as_view(), name="option-quotes-batch"),
    path("options/<str:underlying>/chain", market.OptionChainView.as_view(), name="option-chain"),
    path("orders", orders.OrdersView.as_view(), name="orders"),
    path("orders/bulk", orders.BulkOrderView.as_view(), name="orders-bulk"),
    path("orders/<str:order_id>", orders.OrderDetailView.as_view(), name="order-detail"),
]
