terraform {
  required_version = ">= 1.6"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.14"
    }
  }
}

provider "azurerm" {
  features {}

  subscription_id = var.subscription_id
  # The storage account disables shared keys: data-plane calls (the package upload) use Entra ID.
  storage_use_azuread = true
}
