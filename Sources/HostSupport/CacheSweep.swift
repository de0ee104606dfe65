import Foundation

/// What an interrupted cxllab leaves in the cache: half-made kernels, images, modules and
/// sysroots (`.staging-*`, `*.staging-*`, `*.work`, `*.tmp-*`) and damaged copies set aside
/// (`.damaged-*`). Each is made under a lock and renamed into place when done, so one older
/// than an hour belongs to no running cxllab. `cxllab clean` sweeps them.
public enum CacheSweep {
    static let markers = [".staging-", ".work", ".tmp-", ".damaged-"]

    /// Removes such leftovers older than `age`; returns the paths removed.
    public static func sweep(_ cache: CacheDirectory, olderThan age: TimeInterval = 3600) -> [String] {
        let fm = FileManager.default
        var removed: [String] = []
        for area in ["kernels", "images", "modules", "sysroots", "agents", "headers"] {
            let root = cache.path + "/" + area
            // Two levels: leftovers sit beside what they were to become.
            var folders = [root]
            folders += ((try? fm.contentsOfDirectory(atPath: root)) ?? []).map { root + "/" + $0 }
            for folder in folders {
                for name in (try? fm.contentsOfDirectory(atPath: folder)) ?? [] where markers.contains(where: name.contains) {
                    let path = folder + "/" + name
                    guard let modified = (try? fm.attributesOfItem(atPath: path))?[.modificationDate] as? Date,
                          -modified.timeIntervalSinceNow > age else { continue }
                    if (try? fm.removeItem(atPath: path)) != nil { removed.append(path) }
                }
            }
        }
        return removed
    }
}
