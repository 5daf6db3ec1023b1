resource "azurerm_service_plan" "this" {
  #checkov:skip=CKV_AZURE_212:The default Consumption (Y1) plan has no worker count: the platform adds and removes instances. Elastic Premium and dedicated plans take var.worker_count.
  #checkov:skip=CKV_AZURE_225:The default Consumption (Y1) plan cannot be zone redundant; Elastic Premium and dedicated plans take var.zone_balancing_enabled.
  name                = "asp-${var.name}"
  resource_group_name = local.resource_group_name
  location            = var.location
  os_type             = "Linux"
  sku_name            = var.sku_name

  worker_count           = local.consumption ? null : var.worker_count
  zone_balancing_enabled = local.consumption ? null : var.zone_balancing_enabled

  tags = var.tags
}

# `nexus-edge azure`: an Azure Functions custom handler. The host starts the executable named in
# the bundle's host.json and forwards every HTTP request to it on FUNCTIONS_CUSTOMHANDLER_PORT;
# the handler serves the bundle's app from its working directory (the package root).
resource "azurerm_linux_function_app" "this" {
  #checkov:skip=CKV_AZURE_221:The app is an HTTP entry point of the platform: it must be reachable from the internet (callers authenticate with function keys, and https_only holds).
  name                = var.name
  resource_group_name = local.resource_group_name
  location            = var.location
  service_plan_id     = azurerm_service_plan.this.id

  # The host reaches its storage with the app's identity: no connection string, no key.
  storage_account_name          = azurerm_storage_account.this.name
  storage_uses_managed_identity = true
  # Run from the package URL below; no Azure Files content share (which needs a shared key).
  content_share_force_disabled = true
  builtin_logging_enabled      = false

  functions_extension_version                    = "~4"
  https_only                                     = true
  public_network_access_enabled                  = true
  ftp_publish_basic_authentication_enabled       = false
  webdeploy_publish_basic_authentication_enabled = false

  identity {
    type = "SystemAssigned"
  }

  site_config {
    minimum_tls_version      = "1.2"
    scm_minimum_tls_version  = "1.2"
    ftps_state               = "Disabled"
    http2_enabled            = true
    remote_debugging_enabled = false

    # Only dedicated plans keep instances warm this way; Consumption and Elastic Premium must not.
    always_on = startswith(var.sku_name, "P")

    application_insights_connection_string = azurerm_application_insights.this.connection_string

    # Sets FUNCTIONS_WORKER_RUNTIME=custom (the provider owns that app setting).
    application_stack {
      use_custom_runtime = true
    }
  }

  app_settings = merge(
    { RUST_LOG = var.log_level },
    var.app_settings,
    var.invoke_token == "" ? {} : { NEXUS_INVOKE_TOKEN = var.invoke_token },
    {
      # Run from the zip in the module's storage, fetched with the app's identity.
      WEBSITE_RUN_FROM_PACKAGE                     = azurerm_storage_blob.package.url
      WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID = "SystemAssigned"

      # Telemetry authenticated with the app's identity (local auth is off in Application Insights).
      APPLICATIONINSIGHTS_AUTHENTICATION_STRING = "Authorization=AAD"
    },
  )

  tags = var.tags
}
