# The SirsiNexus runtime as an Azure Functions custom handler, serving one component.

module "function_app" {
  source = "../../modules/azure-function-app"

  name                = var.name
  location            = var.location
  resource_group_name = var.resource_group_name != "" ? var.resource_group_name : "rg-${var.name}"
  package_path        = var.package_path
  sku_name            = var.sku_name

  tags = var.tags
}
