output "function_app_name" {
  description = "Name of the function app."
  value       = azurerm_linux_function_app.this.name
}

output "function_app_id" {
  description = "Resource ID of the function app."
  value       = azurerm_linux_function_app.this.id
}

output "default_hostname" {
  description = "Default hostname of the function app (<name>.azurewebsites.net)."
  value       = azurerm_linux_function_app.this.default_hostname
}

output "url" {
  description = "Base URL of the app: the bundle's host.json routes every path under it (route prefix /api, route {*path}) to the handler."
  value       = "https://${azurerm_linux_function_app.this.default_hostname}/api"
}

output "principal_id" {
  description = "Object ID of the app's system-assigned identity, to grant it access to other resources."
  value       = azurerm_linux_function_app.this.identity[0].principal_id
}

output "function_key_hint" {
  description = "How to read the function key callers pass as ?code=… or the x-functions-key header (authLevel is function)."
  value       = "az functionapp function keys list --resource-group ${local.resource_group_name} --name ${azurerm_linux_function_app.this.name} --function-name nexus"
}

output "resource_group_name" {
  description = "Resource group of the app."
  value       = local.resource_group_name
}

output "storage_account_name" {
  description = "Storage account of the Functions host and the package."
  value       = azurerm_storage_account.this.name
}

output "application_insights_id" {
  description = "Resource ID of the Application Insights component."
  value       = azurerm_application_insights.this.id
}
