from django.contrib import admin

from constitutions.models import Constitution, ConstitutionVersion, Principle


class PrincipleInline(admin.TabularInline):
    model = Principle
    extra = 0
    can_delete = False
    fields = ("position", "name", "comparison", "weight", "category", "enabled")

    def has_change_permission(self, request, obj=None):
        return False  # versions are immutable

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Constitution)
class ConstitutionAdmin(admin.ModelAdmin):
    list_display = ("name", "archived", "created_by", "created_at")
    list_filter = ("archived",)
    search_fields = ("name", "description")


@admin.register(ConstitutionVersion)
class ConstitutionVersionAdmin(admin.ModelAdmin):
    list_display = ("constitution", "number", "author", "note", "created_at", "content_hash")
    list_filter = ("constitution",)
    inlines = [PrincipleInline]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False  # versions are made by saving a constitution in the editor


@admin.register(Principle)
class PrincipleAdmin(admin.ModelAdmin):
    list_display = ("name", "version", "position", "category", "weight", "enabled")
    list_filter = ("category", "enabled")
    search_fields = ("name", "comparison")

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False
