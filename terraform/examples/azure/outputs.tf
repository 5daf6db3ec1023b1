output "url" {
  description = "Base URL of the function (add ?code=<function key>)."
  value       = module.function_app.url
}

output "function_app_name" {
  description = "Name of the function app."
  value       = module.function_app.function_app_name
}

output "function_key_hint" {
  description = "Command printing the function key."
  value       = module.function_app.function_key_hint
}

output "principal_id" {
  description = "Object ID of the app's managed identity."
  value       = module.function_app.principal_id
}
