data "azurerm_client_config" "current" {}

resource "azurerm_resource_group" "this" {
  count = var.create_resource_group ? 1 : 0

  name     = var.resource_group_name
  location = var.location

  tags = var.tags
}

data "azurerm_resource_group" "existing" {
  count = var.create_resource_group ? 0 : 1

  name = var.resource_group_name
}

locals {
  resource_group_name = var.create_resource_group ? azurerm_resource_group.this[0].name : data.azurerm_resource_group.existing[0].name

  storage_account_name = var.storage_account_name != "" ? var.storage_account_name : substr(replace("st${var.name}", "-", ""), 0, 24)

  consumption = var.sku_name == "Y1"

  # The content hash names the blob, so a new package is a new URL and the app restarts on it.
  package_blob_name = "nexus-${filemd5(var.package_path)}.zip"
}
