namespace Loop.Config;

/// <summary>A configuration file or variable Loop cannot use. The message names where the
/// problem is (file:line:column, key or environment variable) and how to fix it.</summary>
public sealed class ConfigException(string message, Exception? inner = null) : Exception(message, inner);
