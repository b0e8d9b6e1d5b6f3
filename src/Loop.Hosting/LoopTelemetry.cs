namespace Loop.Hosting;

using Loop.Api;
using Loop.Runtime;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

/// <summary>
/// The node's metrics, through OpenTelemetry, in Prometheus' text format at
/// <see cref="ApiCallers.MetricsPath"/>: Loop's own (<see cref="LoopMetrics"/>) and the meters Orleans,
/// ASP.NET Core and the .NET runtime publish. Who may read them is <see cref="ApiCallers"/>' to decide.
/// </summary>
internal static class LoopTelemetry
{
    private static readonly string[] Meters =
    [
        LoopMetrics.MeterName,
        "Microsoft.Orleans",
        "Microsoft.AspNetCore.Hosting",
        "Microsoft.AspNetCore.Server.Kestrel",
        "System.Runtime",
    ];

    /// <param name="nodeName">Which node of a cluster answers (target_info's service_instance_id).</param>
    public static void AddLoopTelemetry(this IServiceCollection services, string nodeName) =>
        services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService("loop", serviceVersion: LoopVersion.Current, serviceInstanceId: nodeName))
            .WithMetrics(metrics => metrics
                .AddMeter(Meters)
                .AddPrometheusExporter());

    public static void MapLoopTelemetry(this WebApplication app) => app.MapPrometheusScrapingEndpoint(ApiCallers.MetricsPath);
}
