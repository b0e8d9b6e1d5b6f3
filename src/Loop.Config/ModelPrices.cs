using System.Text.Json;
using Loop.Domain.Runs;

namespace Loop.Config;

/// <summary>Key <c>model_prices</c>: USD per million tokens by model id, for runs that report
/// tokens but no cost. Entries in config.json add to or replace these defaults one model at a time.</summary>
public static class ModelPrices
{
    /// <summary>Anthropic's list prices (cache_write is the 5-minute cache write).</summary>
    public static IReadOnlyDictionary<string, ModelPrice> Defaults { get; } = new Dictionary<string, ModelPrice>
    {
        ["claude-opus-4-5"] = new(5m, 25m, 6.25m, 0.50m),
        ["claude-opus-4-1"] = new(15m, 75m, 18.75m, 1.50m),
        ["claude-opus-4"] = new(15m, 75m, 18.75m, 1.50m),
        ["claude-sonnet-4-5"] = new(3m, 15m, 3.75m, 0.30m),
        ["claude-sonnet-4"] = new(3m, 15m, 3.75m, 0.30m),
        ["claude-3-7-sonnet"] = new(3m, 15m, 3.75m, 0.30m),
        ["claude-haiku-4-5"] = new(1m, 5m, 1.25m, 0.10m),
        ["claude-3-5-haiku"] = new(0.80m, 4m, 1m, 0.08m),
    };

    internal static IReadOnlyDictionary<string, ModelPrice> Read(JsonElement element, IReadOnlyDictionary<string, ModelPrice> current, string file)
    {
        const string Example = "{ \"claude-sonnet-4-5\": { \"input\": 3, \"output\": 15, \"cache_write\": 3.75, \"cache_read\": 0.3 } }";
        if (element.ValueKind != JsonValueKind.Object)
        {
            throw new ConfigException($"{file}: 'model_prices' must be an object, e.g. \"model_prices\": {Example} (found {ConfigJson.Describe(element)})");
        }
        var prices = new Dictionary<string, ModelPrice>(current);
        foreach (var model in element.EnumerateObject())
        {
            var path = $"model_prices.{model.Name}";
            if (model.Value.ValueKind != JsonValueKind.Object)
            {
                throw new ConfigException($"{file}: '{path}' must be an object, e.g. {{ \"input\": 3, \"output\": 15, \"cache_write\": 3.75, \"cache_read\": 0.3 }} (found {ConfigJson.Describe(model.Value)})");
            }
            foreach (var property in model.Value.EnumerateObject())
            {
                if (property.Name is not ("input" or "output" or "cache_write" or "cache_read"))
                {
                    throw new ConfigException($"{file}: unknown key '{path}.{property.Name}': the keys are input, output, cache_write and cache_read (USD per million tokens)");
                }
            }
            prices[model.Name] = new ModelPrice(
                Price(model.Value, "input", path, file),
                Price(model.Value, "output", path, file),
                Price(model.Value, "cache_write", path, file),
                Price(model.Value, "cache_read", path, file));
        }
        return prices;
    }

    private static decimal Price(JsonElement parent, string key, string path, string file)
    {
        if (!parent.TryGetProperty(key, out var element))
        {
            throw new ConfigException($"{file}: '{path}' is missing '{key}' (USD per million tokens, e.g. \"{key}\": 3)");
        }
        if (element.ValueKind != JsonValueKind.Number || !element.TryGetDecimal(out var price) || price < 0)
        {
            throw new ConfigException($"{file}: '{path}.{key}' must be a number of USD per million tokens, at least 0, e.g. \"{key}\": 3 (found {ConfigJson.Describe(element)})");
        }
        return price;
    }
}
