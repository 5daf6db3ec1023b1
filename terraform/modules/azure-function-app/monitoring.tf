resource "azurerm_log_analytics_workspace" "this" {
  name                = "log-${var.name}"
  resource_group_name = local.resource_group_name
  location            = var.location
  sku                 = "PerGB2018"
  retention_in_days   = var.log_retention_in_days

  tags = var.tags
}

# Workspace-based, and only Entra ID identities (the function app's) may send telemetry.
resource "azurerm_application_insights" "this" {
  name                          = "appi-${var.name}"
  resource_group_name           = local.resource_group_name
  location                      = var.location
  workspace_id                  = azurerm_log_analytics_workspace.this.id
  application_type              = "other"
  local_authentication_disabled = true

  tags = var.tags
}

resource "azurerm_role_assignment" "function_app_telemetry" {
  scope                = azurerm_application_insights.this.id
  role_definition_name = "Monitoring Metrics Publisher"
  principal_id         = azurerm_linux_function_app.this.identity[0].principal_id
  principal_type       = "ServicePrincipal"
}
