app_name = "datasets"
urlpatterns = []
