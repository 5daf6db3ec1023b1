# The Functions host's storage (leases, keys) and the deployment package. No shared keys, no
# anonymous access, TLS 1.2, double encryption; the function app reaches it with its identity.
resource "azurerm_storage_account" "this" {
  #checkov:skip=CKV_AZURE_35:Consumption (Y1) function apps reach their storage from shared, unlisted addresses and cannot use VNet integration, so the firewall must admit all networks; access still needs an Entra ID identity with a data role (shared keys are disabled).
  #checkov:skip=CKV_AZURE_59:Same reason as CKV_AZURE_35: public network access stays enabled for the Consumption plan's host; anonymous and shared-key access are disabled.
  #checkov:skip=CKV2_AZURE_33:A private endpoint only helps a function app with VNet integration (Elastic Premium); the default Consumption plan cannot use one.
  #checkov:skip=CKV_AZURE_33:Queue reads, writes and deletes are logged by azurerm_monitor_diagnostic_setting.storage (resource logs to Log Analytics); the check only recognizes classic Storage Analytics logging (queue_properties), deprecated in azurerm 4.
  #checkov:skip=CKV2_AZURE_1:The account holds only the deployment package and the host's leases and keys, no application data; Microsoft-managed keys with infrastructure (double) encryption suffice, and a customer-managed key would add a Key Vault this module does not own.
  name                     = local.storage_account_name
  resource_group_name      = local.resource_group_name
  location                 = var.location
  account_kind             = "StorageV2"
  account_tier             = "Standard"
  account_replication_type = var.storage_replication_type

  https_traffic_only_enabled        = true
  min_tls_version                   = "TLS1_2"
  allow_nested_items_to_be_public   = false
  shared_access_key_enabled         = false
  default_to_oauth_authentication   = true
  infrastructure_encryption_enabled = true
  local_user_enabled                = false
  cross_tenant_replication_enabled  = false
  public_network_access_enabled     = true

  network_rules {
    default_action = "Allow"
    bypass         = ["AzureServices", "Logging", "Metrics"]
  }

  sas_policy {
    expiration_period = "01.00:00:00"
    expiration_action = "Log"
  }

  blob_properties {
    versioning_enabled = true

    delete_retention_policy {
      days = 7
    }

    container_delete_retention_policy {
      days = 7
    }
  }

  tags = var.tags
}

resource "azurerm_storage_container" "packages" {
  #checkov:skip=CKV2_AZURE_21:Blob reads are logged by azurerm_monitor_diagnostic_setting.storage (resource logs to Log Analytics); the check wants azurerm_log_analytics_storage_insights, which needs the account key that this account disables.
  name                  = "function-packages"
  storage_account_id    = azurerm_storage_account.this.id
  container_access_type = "private"
}

resource "azurerm_storage_blob" "package" {
  name                   = local.package_blob_name
  storage_account_name   = azurerm_storage_account.this.name
  storage_container_name = azurerm_storage_container.packages.name
  type                   = "Block"
  source                 = var.package_path
  content_md5            = filemd5(var.package_path)
  content_type           = "application/zip"

  # The upload goes through Entra ID with the deployer's role (role assignments can take a few
  # minutes to apply: a 403 on the first run goes away on the next).
  depends_on = [azurerm_role_assignment.deployer_blob]
}

# The identity running Terraform uploads the package through Entra ID (shared keys are off).
resource "azurerm_role_assignment" "deployer_blob" {
  count = var.grant_deployer_blob_access ? 1 : 0

  scope                = azurerm_storage_account.this.id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = data.azurerm_client_config.current.object_id
}

# The function app's identity: the host's blobs (leases, keys) and the package.
resource "azurerm_role_assignment" "function_app_blob" {
  scope                = azurerm_storage_account.this.id
  role_definition_name = "Storage Blob Data Owner"
  principal_id         = azurerm_linux_function_app.this.identity[0].principal_id
  principal_type       = "ServicePrincipal"
}

# Resource logs of the blob and queue services (reads, writes, deletes) go to the workspace.
resource "azurerm_monitor_diagnostic_setting" "storage" {
  for_each = toset(["blobServices", "queueServices"])

  name                       = "logs-to-workspace"
  target_resource_id         = "${azurerm_storage_account.this.id}/${each.key}/default"
  log_analytics_workspace_id = azurerm_log_analytics_workspace.this.id

  enabled_log {
    category = "StorageRead"
  }

  enabled_log {
    category = "StorageWrite"
  }

  enabled_log {
    category = "StorageDelete"
  }
}
