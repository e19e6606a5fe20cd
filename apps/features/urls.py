app_name = "features"
urlpatterns = []
