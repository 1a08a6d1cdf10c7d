/*
 * The twin prototypes that give a cache the behaviour of its state without a check on the hot
 * path: one whose reads and writes demand contents (a cache not loaded yet; LazyCache builds
 * there), one whose writes are refused (its manager closed), over the class's own prototype or
 * its expiring twin. A user's subclass keeps its own prototype and gets a dispatch layer instead.
 */
import { type InspectOptions, inspect } from 'node:util';
import { type CacheCore, coreOf } from './cache-core';
import { ManagerClosedError } from './errors';
import { expiringTwin } from './expiry/cache-expiry';
import { isDeclaredClass } from './options';

type Methods = Record<string | symbol, ((...args: unknown[]) => unknown) | undefined>;
interface Named {
  readonly name: string;
  readonly manager: { readonly name: string };
  requireContents(): void;
}

const GUARDED: Array<string | symbol> = ['get', 'set', 'delete', 'clear', 'forEach', 'keys', 'values', 'entries', Symbol.iterator];

/** Sets the behaviour of the cache's present state: on the cache itself, or, subclassed, for its dispatch layer. */
export function applyPrototype(cache: object, core: CacheCore<unknown>, real: object, subclassed: boolean): void {
  const own = core.book === null ? real : expiringTwin(real);
  let proto = core.hasContents ? own : missingContentsPrototype(own);
  if (!core.writable) proto = closedPrototype(proto);
  core.behaviour = proto;
  if (!subclassed) Object.setPrototypeOf(cache, proto);
}

// The dispatch layers put under users' subclasses, one per topmost subclass.
const dispatchLayers = new WeakSet<object>();

/** The prototype of the nearest of our classes at or above `proto` (a user's subclass sits above it); `base` at the latest. */
export function libraryPrototype(proto: object, base: object): object {
  let p: object | null = proto;
  // Its own constructor: a dispatch layer inherits the one of the class it sits on.
  while (p !== null && p !== base && !(Object.hasOwn(p, 'constructor') && isDeclaredClass((p as { constructor?: unknown }).constructor))) {
    p = Object.getPrototypeOf(p) as object | null;
  }
  return p ?? base;
}

/**
 * A user's subclass keeps its prototype (so its overrides run, and their `super` calls), and
 * gets, once, a layer under its topmost class whose methods dispatch to the behaviour of the
 * cache's state, as the twin prototypes give our own classes without a call more.
 */
export function dispatchBelow(userPrototype: object, library: object): void {
  let top = userPrototype;
  for (let above = Object.getPrototypeOf(top) as object; above !== library; above = Object.getPrototypeOf(top) as object) {
    if (dispatchLayers.has(above)) return; // this class got its layer already
    top = above;
  }
  const layer = Object.create(library) as Record<string | symbol, unknown>;
  for (const name of [...GUARDED, 'has', inspect.custom]) {
    Object.defineProperty(layer, name, {
      configurable: true,
      writable: true,
      value: function dispatched(this: Map<unknown, unknown>, ...args: unknown[]): unknown {
        const own = (coreOf(this).behaviour as Methods)[name];
        // No inspect hook of its own (no expiry): shown as the Map it is.
        if (own === undefined && name === inspect.custom) return `${this.constructor.name} ${inspect(new Map(Map.prototype.entries.call(this)), args[1] as InspectOptions)}`;
        return own?.apply(this, args);
      },
    });
  }
  Object.setPrototypeOf(top, layer);
  dispatchLayers.add(layer);
}

// One twin per concrete class prototype: same methods, each first demanding contents.
const missingPrototypes = new WeakMap<object, object>();

function missingContentsPrototype(real: object): object {
  let twin = missingPrototypes.get(real);
  if (twin) return twin;
  twin = Object.create(real) as object;
  for (const method of GUARDED) {
    const impl = (real as Methods)[method] as (...args: unknown[]) => unknown;
    Object.defineProperty(twin, method, {
      configurable: true,
      writable: true,
      value: function guarded(this: Named, ...args: unknown[]): unknown {
        this.requireContents();
        return impl.apply(this, args);
      },
    });
  }
  missingPrototypes.set(real, twin);
  return twin;
}

// One twin per prototype (real or missing-contents) for caches whose manager closed.
const closedPrototypes = new WeakMap<object, object>();
const WRITES = ['set', 'delete', 'clear'] as const;

function closedPrototype(base: object): object {
  let twin = closedPrototypes.get(base);
  if (twin) return twin;
  twin = Object.create(base) as object;
  for (const method of WRITES) {
    Object.defineProperty(twin, method, {
      configurable: true,
      writable: true,
      value: function refused(this: Named): never {
        throw new ManagerClosedError(this.manager.name, this.name);
      },
    });
  }
  closedPrototypes.set(base, twin);
  return twin;
}
